"""marshmallow schemas: FooArgs for input, FooSchema for output, one module per area."""
