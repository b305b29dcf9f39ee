"""heartbeat's commands under heartbeat's names, answered by the hbmon agent.

cl_status.py   `cl_status` (/usr/bin/cl_status): every subcommand, options,
               outputs, messages and exit codes of heartbeat 3.0.6's tool
hb_standby.py  `hb_standby [all|local|foreign|failback]` (/usr/share/heartbeat/)
hb_takeover.py `hb_takeover [all|local|foreign|failback]` (/usr/share/heartbeat/)
moves.py       what hb_standby and hb_takeover share: argument checks, usage,
               a request sent without waiting for its outcome
getopt.py      glibc getopt as cl_status's subcommands call it
parameters.py  `cl_status hbparameter`: heartbeat's parameter table from a Config
env.py         where the agent's control socket is (HBMON_CONTROL_SOCKET)

Each module has a `main()` and runs as `python3 -m hbmon.compat.<name>`; the
launchers in the repository's compat/ directory are installed at heartbeat's
paths by the Debian package (compat/README.md). None is a pip console script,
so a pip install never shadows a running heartbeat's own commands.
"""
