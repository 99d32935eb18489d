"""Export: the tuned checkpoint -> Frigate's int8 TFLite, Edge TPU compatibility and compile."""
