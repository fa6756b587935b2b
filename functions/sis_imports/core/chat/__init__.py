"""Chat formats of an alert: AWS Chatbot custom notifications, Slack Block Kit, Teams Adaptive Cards.

Pure: no AWS import. Each formatter takes the alert message (the JSON the notifier publishes) and
reads only the fields it knows, one by one: whatever else a message carries (it carries no token,
verifier, login, IP address or user agent, but a future field might) never reaches a chat.

Text that comes from Canvas or from an uploader (error messages, file names, abort reasons, data set
identifiers, even ids and host names) is untrusted: it is cut to a length, stripped of control and
bidirectional characters, and made inert for the renderer that shows it, so that it can neither
mention anyone (`<!channel>`, `@here`), nor link, format or break out of a code block:

- Slack mrkdwn: `&`, `<`, `>` as Slack's entities; free text inside code blocks (backticks replaced);
  `@` followed by a zero-width space.
- AWS Chatbot (`client-markdown`, rendered as Slack's or Teams' markdown, whichever the channel is):
  `<`, `>` and backticks replaced by look-alikes (no entity or escape means the same on both), free
  text inside code blocks, `@` followed by a zero-width space.
- Teams: untrusted text only in `TextRun`s, which render no markdown; `TextBlock`s and `FactSet`s
  (which do) only hold this package's own words and numbers.

frame.py reads the message; text.py holds the shared words and escapes; one module per format.
"""

from .chatbot import CHATBOT_DESCRIPTION, chatbot
from .frame import CHAT_CHOICES, COUNT_LABELS, OUTCOMES, TYPES, UNUSUAL, wanted
from .slack import (SLACK_BUTTON_TEXT, SLACK_CONTEXT_TEXT, SLACK_FALLBACK_TEXT, SLACK_FIELD_TEXT, SLACK_HEADER_TEXT,
                    SLACK_MAX_BLOCKS, SLACK_MAX_FIELDS, SLACK_SECTION_TEXT, SLACK_URL, slack)
from .teams import TEAMS_MAX_BYTES, teams
from .text import duration_text

__all__ = ["CHATBOT_DESCRIPTION", "CHAT_CHOICES", "COUNT_LABELS", "OUTCOMES", "SLACK_BUTTON_TEXT", "SLACK_CONTEXT_TEXT",
           "SLACK_FALLBACK_TEXT", "SLACK_FIELD_TEXT", "SLACK_HEADER_TEXT", "SLACK_MAX_BLOCKS", "SLACK_MAX_FIELDS",
           "SLACK_SECTION_TEXT", "SLACK_URL", "TEAMS_MAX_BYTES", "TYPES", "UNUSUAL", "chatbot", "duration_text", "slack", "teams",
           "wanted"]
