"""The networks the built-in trainers train and the serving runtimes load.

Each module holds one architecture and its output-folder format (`config.json`
plus `model.safetensors`): how to build the network, how to write a trained one and
how to load it again without executing code. It lies below both `training/` and
`serving/`, so serving never imports a trainer. Nothing here trains.
"""
