"""What every step needs of a model, in one place; `images`: an image file -> uint8 RGB array.

Nothing here imports a step (validation, sampling, training, evaluation, export, publishing).
"""
