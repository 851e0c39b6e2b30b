"""The Flower ClientApp of a site: smpc's secure aggregation message by message, with the site's local FedAvg
training inside the round that needs its update.

``query.smpc_secagg`` messages carry the rounds of secure aggregation. The first carries the run's public
parameters; each later one the server's go frame and data for the next step of
:class:`smpc.fl.secagg_client.ClientSession`, whose state waits in the node's state between messages. The
message of the masked-input round also carries the global model and the round's training settings: the
site trains a copy on its own rows (:func:`smpc.fl.fedavg.local_update`), forms its vector and masks it at
once, so no update ever waits in the node's state and a round costs five exchanges. ``train.smpc`` is the
plain round without secure aggregation: the site returns its vector.

A site trusts only its own copy of the enrolment (the registry of every site's verification key, given
to it out of band) and its own signing key: the server names which sites take part and in what order,
and the site checks it is where the server says; the neighbours' keys are checked against the site's
registry, never against anything the server sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from smpc import dp as dp_lib
from smpc.fl import secagg_messages as msg
from smpc.fl.datasets import ClientData
from smpc.fl.fedavg import local_update
from smpc.fl.flower import frames
from smpc.fl.flower.links import START, MessageLink
from smpc.fl.secagg_client import ClientSession
from smpc.fl.secagg_config import SecAggConfig, make_config
from smpc.fl.secagg_errors import MalformedMessageError
from smpc.fl.secagg_identity import Enrolment, SESSION_BYTES
from smpc.fl.secagg_quantize import quantize
from smpc.fl.sites import first_sums, second_sums
from smpc.net.wire import WireFormatError
from smpc.nn.module import Module

TRAIN_TYPE, TRAIN = "train.smpc", "smpc_train"
_STATE, _SETUP = "smpc_secagg_state", "smpc_secagg_setup"
_STEPS = {msg.ROUND_SHARE: "share_keys", msg.ROUND_MASKED: "send_masked", msg.ROUND_CHECK: "confirm",
          msg.ROUND_UNMASK: "unmask"}
#: most elements an aggregated vector may announce (a 10^8-parameter model and its weight)
MAX_ELEMENTS = 10**8 + 1


@dataclass(frozen=True)
class Site:
    """What a site brings: its rows (``x``, ``y``), its index in the registry, its signing key, the registry."""

    data: object
    index: int
    signing_key: bytes
    registry: Enrolment


def make_client_app(site_of: Callable[[Context], Site], model_fn: Callable[[], Module] | None = None, *,
                    model_of: Callable[[Context], Callable[[], Module]] | None = None,
                    index_of: Callable[[Context], int] | None = None) -> ClientApp:
    """The ClientApp; ``site_of(context)`` gives the node's :class:`Site` (in a simulation, from the node's
    ``partition-id``; in a deployment, loaded from the site's own files) and ``model_fn`` builds the model
    (or ``model_of(context)`` gives the builder, from the run's config). ``index_of(context)``: the site's
    registry index without loading its data (so that a site whose file is broken is still found, and
    then drops out), by default ``site_of(context).index``."""
    if model_of is None:
        model_of = lambda context: model_fn  # noqa: E731
    if index_of is None:
        index_of = lambda context: site_of(context).index  # noqa: E731
    app = ClientApp()

    @app.train("smpc")
    def train(message: Message, context: Context) -> Message:
        return _train(message, context, site_of(context), model_of(context))

    @app.query("smpc_partition")
    def partition(message: Message, context: Context) -> Message:
        return Message(RecordDict({"partition": ConfigRecord({"id": int(index_of(context))})}), reply_to=message)

    @app.query("smpc_secagg")
    def secagg(message: Message, context: Context) -> Message:
        return _secagg_step(message, context, site_of(context), model_of(context))

    return app


def _train(message: Message, context: Context, site: Site, model_fn) -> Message:
    """A plain round (``secure=False``): train on the site's rows and return the vector."""
    return Message(RecordDict({TRAIN: frames.encode([_contribution(message.content[TRAIN], site, model_fn)])}),
                   reply_to=message)


def _contribution(settings: ConfigRecord, site: Site, model_fn) -> np.ndarray:
    """The vector the site adds to the sum: its data as it is (``"given"``: aggregation alone), or the update
    of a round of local training, weighted or with its DP noise share (:func:`_vector`)."""
    kind = str(settings["vector"])
    if kind == "given":
        return np.asarray(site.data, dtype=np.float64).ravel()
    if kind == "first_sums":  # federated standardisation, step 1 (smpc.fl.sites)
        return first_sums(site.data.x)
    if kind == "second_sums":  # step 2, around the first mean, in units of the scale
        rough_mean, scale = frames.decode(settings)
        return second_sums(site.data.x, rough_mean, scale)
    arrays = frames.decode(settings)
    global_vector = arrays[0]
    if len(arrays) == 3:  # the federated standardisation's mean and standard deviation
        mean, std = arrays[1], arrays[2]
        site = Site(ClientData((site.data.x - mean) / np.where(std > 0, std, 1.0), site.data.y), site.index,
                    site.signing_key, site.registry)
    rng = np.random.default_rng([int(settings["seed"]), site.index])
    clip = float(settings["clip_norm"])
    update = local_update(model_fn, site.data, np.asarray(global_vector, np.float64), rng,
                          lr=float(settings["lr"]), momentum=float(settings["momentum"]),
                          local_epochs=int(settings["epochs"]), batch_size=int(settings["batch"]),
                          binary=bool(settings["binary"]), clip_norm=clip if clip > 0 else None)
    return _vector(update, len(site.data), settings)


def _vector(update: np.ndarray, rows: int, settings: ConfigRecord) -> np.ndarray:
    """What the site contributes to the sum (as :class:`smpc.fl.FedAvg`'s clients do)."""
    kind = str(settings["vector"])
    if kind == "weighted":  # the weight rides along: u w, then w
        weight = rows * float(settings["weight_scale"])
        return np.append(update * weight, weight)
    if kind == "noised":  # distributed DP: this site's share of the noise
        return update + dp_lib.gaussian_noise(update.shape, float(settings["noise_std"]))
    if kind == "plain":
        return update
    raise MalformedMessageError(msg.SERVER, "the server asked for an unknown kind of update")


def _secagg_step(message: Message, context: Context, site: Site, model_fn) -> Message:
    link = MessageLink(message)
    if START in message.content:
        setup = message.content[START]
        config, me = _config(setup, site)
        session = ClientSession(me, config, site.signing_key)
        session.advertise(link)
        context.state[_SETUP] = setup
    else:
        if _SETUP not in context.state or _STATE not in context.state:
            return link.reply(message)  # stopped (dropped out, or the run ended): nothing more to say
        setup = context.state[_SETUP]
        config, me = _config(setup, site)
        session = ClientSession.restore(me, config, site.signing_key, dict(context.state[_STATE]))
        go = link.peek()
        step = _STEPS.get(int(go[0])) if go is not None and go.shape == (2,) else None
        if step is None:
            raise MalformedMessageError(msg.SERVER, "the server sent a message for no round of secure aggregation")
        if step == "send_masked":
            going_on = session.send_masked(link, _vector_for(message, config, site, model_fn), encoded=True)
        else:
            going_on = getattr(session, step)(link)
        drop = str(setup["drop"])
        finished = (not going_on or step == "unmask" or (drop == "before" and step == "share_keys")
                    or (drop == "after" and step == "send_masked"))
        if finished:
            for key in (_STATE, _SETUP):
                context.state.pop(key, None)
            return link.reply(message)
    context.state[_STATE] = ConfigRecord(session.state())
    return link.reply(message)


def _vector_for(message: Message, config: SecAggConfig, site: Site, model_fn) -> np.ndarray:
    """The site's contribution, from the training settings the masked-input round's message carries, as
    ring elements of the run (checked to have the run's size)."""
    if TRAIN not in message.content:
        raise MalformedMessageError(msg.SERVER, "the masked-input round came without the round's settings")
    try:
        vector = _contribution(message.content[TRAIN], site, model_fn)
    except (KeyError, TypeError, ValueError, WireFormatError) as exc:
        raise MalformedMessageError(msg.SERVER, f"the server's training settings are unusable: {exc}") from None
    if vector.size != config.size:
        raise MalformedMessageError(msg.SERVER, f"the server expects {config.size} elements, this site has "
                                                f"{vector.size}")
    return quantize(vector, config.clip, config.frac_bits, config.ring_bits)


def _config(setup: ConfigRecord, site: Site) -> tuple[SecAggConfig, int]:
    """Check the server's public parameters and build the run's config with this site's own registry."""
    try:
        sites = [int(s) for s in setup["sites"]]
        me, session = int(setup["client"]), bytes(setup["session"])
        shape = tuple(int(d) for d in setup["shape"])
        neighbours = int(setup["neighbours"])
        if not 0 <= me < len(sites) or sites[me] != site.index:
            raise ValueError(f"the server placed this site (registry index {site.index}) at a position where it "
                             f"is not")
        if len(set(sites)) != len(sites) or any(not 0 <= s < len(site.registry) for s in sites):
            raise ValueError("the list of taking part sites repeats a site or names one not in the registry")
        if len(session) != SESSION_BYTES or len(shape) != 1 or not 1 <= shape[0] <= MAX_ELEMENTS:
            raise ValueError("malformed session or shape")
        enrolment = Enrolment(tuple(site.registry.keys[s] for s in sites))
        config = make_config(len(sites), shape, int(setup["threshold"]), (), (), None if neighbours < 0 else neighbours,
                             float(setup["clip"]), int(setup["ring_bits"]), int(setup["frac_bits"]),
                             enrolment=enrolment, session=session)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessageError(msg.SERVER, f"the server's parameters for secure aggregation are unusable: "
                                                f"{exc}") from None
    return config, me
