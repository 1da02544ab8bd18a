"""`walk_layers`: a layer and every layer nested in it, through public attributes only."""

import keras


def walk_layers(layer):
    """The layer, then every layer nested in it (a model's layers, sublayers held in attributes, lists or
    dicts), each once, parents before children.

    Args:
        layer: a Keras layer or model.
    """
    seen, order = set(), []

    def visit(item):
        if isinstance(item, (list, tuple)):
            for value in item:
                visit(value)
        elif isinstance(item, dict):
            for value in item.values():
                visit(value)
        elif isinstance(item, keras.Layer) and id(item) not in seen:
            seen.add(id(item))
            order.append(item)
            if isinstance(item, keras.Model):
                visit(item.layers)
            visit([value for key, value in vars(item).items() if not key.startswith("_")])

    visit(layer)
    return order
