"""The pieces of examples/train.py, for scripts of your own: the digits data set
(data), the training loop of article 004 (loop), checkpoints that resume exactly
(checkpoint), torch.distributed set-up (parallel) and the loss/accuracy plot (plot).

They live beside the examples, not in the installed `archspec` package, which holds
only what builds and runs a network. `python examples/train.py` finds them because
Python puts the script's folder on sys.path; elsewhere, add examples/ to it.
"""
