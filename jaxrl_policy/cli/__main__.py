"""``python -m jaxrl_policy.cli`` = the ``jaxrl-policy`` command."""
from jaxrl_policy.cli.main import main

main()
