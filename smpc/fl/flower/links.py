"""The secure-aggregation endpoints' ``send``/``recv`` over Flower messages.

smpc's secure aggregation (:mod:`smpc.fl.secagg_server`, :class:`smpc.fl.secagg_client.ClientSession`)
talks through an object with ``send(peer, array)`` and ``recv(peer)``. On Flower every exchange is the
ServerApp's message to a node and the node's reply, so:

- :class:`GridLink` (the server's) collects what the server sends to each client in a round; the server's
  first ``recv`` after that sends one message per client through the Grid and waits for the replies
  (``timeout``); a client with no reply, or an empty or failed one, reads as a dropout
  (:class:`~smpc.exceptions.PeerFinished`), as when an smpc channel closes.
- :class:`MessageLink` (a client's) serves the arrays of one incoming message to ``recv`` and collects
  what the client ``send``\\ s into its reply.
"""

from __future__ import annotations

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict

from smpc.exceptions import PeerFinished
from smpc.fl import secagg_messages as msg
from smpc.fl.flower import frames
from smpc.fl.secagg_errors import MalformedMessageError
from smpc.net.wire import WireFormatError

MESSAGE_TYPE = "query.smpc_secagg"
FRAMES, START = "smpc", "secagg_start"


class GridLink:
    """The server's side: client c is Flower node ``nodes[c]``; ``start[c]`` is its first message's
    ConfigRecord (the run's public parameters), sent with the first exchange; ``attach`` maps a round
    number to records (name: record) that ride along with that round's go frame to every client."""

    def __init__(self, grid, nodes: list[int], start: dict[int, ConfigRecord], group: str, timeout: float,
                 attach: dict[int, dict[str, ConfigRecord]] | None = None):
        self.grid, self.nodes, self.group, self.timeout = grid, list(nodes), group, timeout
        self._attach = dict(attach or {})
        self._client_of = {node: c for c, node in enumerate(self.nodes)}
        self._start = dict(start)
        self._outbox: dict[int, list[np.ndarray]] = {c: [] for c in self._start}
        self._inbox: dict[int, list[np.ndarray]] = {}
        self.exchanges = 0

    def send(self, endpoint: int, array: np.ndarray) -> None:
        self._outbox.setdefault(endpoint - 1, []).append(np.array(array))

    def recv(self, endpoint: int) -> np.ndarray:
        if self._outbox:
            self._exchange()
        queue = self._inbox.get(endpoint - 1)
        if not queue:
            raise PeerFinished(endpoint, f"{msg.name_of(endpoint)} sent no reply")
        return queue.pop(0)

    def flush(self) -> None:
        """Deliver what is left to send (the server's last go frames), without waiting for data back."""
        if any(self._outbox.values()):
            self._exchange()

    def _exchange(self) -> None:
        messages = []
        for client, arrays in sorted(self._outbox.items()):
            content = RecordDict({FRAMES: frames.encode(arrays)})
            if client in self._start:
                content[START] = self._start.pop(client)
            go = arrays[0] if arrays else None
            if go is not None and go.dtype == np.int64 and go.shape == (2,) and int(go[1]) == 1:
                for name, record in self._attach.get(int(go[0]), {}).items():
                    content[name] = record
            messages.append(Message(content, self.nodes[client], MESSAGE_TYPE, group_id=self.group))
        self._outbox = {}
        self._inbox = {}
        self.exchanges += 1
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            client = self._client_of.get(reply.metadata.src_node_id)
            if client is None or reply.has_error() or not reply.has_content() or FRAMES not in reply.content:
                continue  # no usable reply: the client dropped out
            try:
                self._inbox[client] = frames.decode(reply.content[FRAMES])
            except WireFormatError as exc:
                raise MalformedMessageError(client + 1, f"client {client} sent a malformed message: {exc}") from None


class MessageLink:
    """A client's side for one incoming message: ``recv`` pops its arrays, ``send`` fills the reply."""

    def __init__(self, message: Message):
        try:
            self._arrays = frames.decode(message.content[FRAMES] if FRAMES in message.content else None)
        except WireFormatError as exc:
            raise MalformedMessageError(msg.SERVER, f"the server sent a malformed message: {exc}") from None
        self.outgoing: list[np.ndarray] = []

    def peek(self) -> np.ndarray | None:
        """The next array ``recv`` would return, or None."""
        return self._arrays[0] if self._arrays else None

    def recv(self, peer: int) -> np.ndarray:
        if not self._arrays:
            raise MalformedMessageError(msg.SERVER, "the server's message ended early")
        return self._arrays.pop(0)

    def send(self, peer: int, array: np.ndarray) -> None:
        self.outgoing.append(np.array(array))

    def reply(self, message: Message) -> Message:
        """The reply carrying what was sent (an empty one, if nothing: the client has stopped)."""
        content = RecordDict({FRAMES: frames.encode(self.outgoing)}) if self.outgoing else RecordDict()
        return Message(content, reply_to=message)
