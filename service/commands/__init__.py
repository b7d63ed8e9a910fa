"""Every decision promptd writes into the log goes through a command here.

A command loads the aggregate it decides on (a prompt with its deployments, or the token
book) by folding its stream, decides with pure functions, and appends with the stream
version it loaded: the database refuses a second decision on the same version, and the
loser decides again on what is now true (``CommandHandler``).
"""

from service.commands._commands import Commands
from service.commands.aggregates import LabelMove, PromptAggregate, TokenBookAggregate
from service.commands.handler import CommandHandler, CommandRefused, Outcome

__all__ = ["CommandHandler", "CommandRefused", "Commands", "LabelMove", "Outcome",
           "PromptAggregate", "TokenBookAggregate"]
