"""Training loops behind the ``lightgrad train`` and ``lightgrad sample`` commands."""
