"""The control socket: how the CLI talks to the running agent.

client.py    the CLI's side: request (wait for the reply), notify (do not)
server.py    the agent's side: the unix socket, root only
commands.py  what a request asks of the agent, and the JSON it gets back
report.py    the status report: a snapshot as JSON, and as hbmon status's table
"""
