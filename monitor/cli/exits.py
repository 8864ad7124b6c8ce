"""Exit statuses of every command, in one table.

sysexits(3) where one fits, timeout(1)'s for a wait that ran out, the shell's for an
interrupt, the AWS CLI's for a failed call (the drop-ins must match it exactly).
"""

OK = 0
FAILURE = 1  # it could not do it; one line on stderr says why
USAGE = 2  # as argparse: a mistyped option or value
NOPERM = 77  # EX_NOPERM: the state belongs to another user; restarting will not help
CONFIG = 78  # EX_CONFIG: the config file is wrong; restarting will not help either
TIMEOUT = 124  # as timeout(1): distinct from every failure
INTERRUPTED = 130  # 128 + SIGINT, as the shell reports Ctrl-C
PARAM_VALIDATION = 252  # AWS CLI v2's, for the YAML input only v2 has
SERVICE_ERROR = 255  # the AWS CLI's for a call that failed
