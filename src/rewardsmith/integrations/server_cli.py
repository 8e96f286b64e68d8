"""``rewardsmith serve``: the OpenRLHF-compatible reward server (needs the ``serve`` extra).

The bearer token comes from ``$REWARDSMITH_TOKEN`` or ``--token-file``; a ``--token`` on the
command line is refused, since every local user can read a process's arguments (``ps``,
``/proc/PID/cmdline``). The variable is removed from the environment once read, so verifier
processes (and the programs a code verifier runs) never inherit it.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import Any

from ..cli_args import port, positive_float, positive_int

TOKEN_ENV = "REWARDSMITH_TOKEN"


def read_token(token_file: str | None) -> str | None:
    """The token from ``token_file`` (surrounding whitespace stripped) or ``$REWARDSMITH_TOKEN``; ValueError if empty."""
    if token_file is not None:
        try:
            mode = os.stat(token_file).st_mode
            with open(token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--token-file {token_file}: cannot read it ({exc})") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            print(
                f"rewardsmith serve: warning: {token_file} is readable by other users; chmod 600 it",
                file=sys.stderr,
                flush=True,
            )
        source = f"--token-file {token_file}"
    else:
        token = os.environ.get(TOKEN_ENV)
        source = f"${TOKEN_ENV}"
    os.environ.pop(TOKEN_ENV, None)
    if token is not None and not token.strip():
        raise ValueError(f"{source} is empty")
    return token


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import create_app

    if args.token is not None:
        print(
            f"rewardsmith serve: error: --token on the command line is visible to every local user (ps, /proc); "
            f"put the token in ${TOKEN_ENV} or in a file given with --token-file",
            file=sys.stderr,
        )
        return 2
    try:
        token = read_token(args.token_file)
    except ValueError as exc:
        print(f"rewardsmith serve: error: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        print(
            f"rewardsmith serve: warning: listening beyond loopback without a token (${TOKEN_ENV} or --token-file); "
            "anyone who can reach it can score",
            flush=True,
        )
    waiting = args.groups_per_step * (args.num_generations or 1)
    if waiting > args.max_connections:
        print(
            f"rewardsmith serve: error: --groups-per-step {args.groups_per_step} × --num-generations "
            f"{args.num_generations or 1} = {waiting} one-rollout requests wait at once, each on its own connection, "
            f"but --max-connections is {args.max_connections}: raise it (and `ulimit -n`)",
            file=sys.stderr,
        )
        return 2
    app = create_app(
        args.spec,
        token=token,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_concurrency=args.max_concurrency,
        save_every_s=args.save_every_s,
        group_size=args.num_generations,
        body_timeout_s=args.body_timeout_s,
        group_timeout_s=args.group_timeout_s,
        groups_per_call=args.groups_per_step,
    )
    print(
        f"rewardsmith serve: POST http://{args.host}:{args.port}/get_reward (OpenRLHF --remote_rm_url), /score, "
        "/verify (NeMo Gym), GET /healthz",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        limit_concurrency=args.max_connections,
        timeout_keep_alive=5,
    )
    server = _server_class()(config, app.state.barrier)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled, after its clean shutdown
        pass
    return 0 if server.started else 1


def _server_class() -> type:
    import uvicorn

    class BarrierFirstServer(uvicorn.Server):
        """On shutdown, score the rollouts waiting in the group barrier first, so their requests are
        answered before uvicorn waits for open requests to finish (instead of after their timeout)."""

        def __init__(self, config: uvicorn.Config, barrier: Any) -> None:
            super().__init__(config)
            self.barrier = barrier

        async def shutdown(self, sockets: Any = None) -> None:
            if self.barrier is not None:
                await self.barrier.close()
            await super().shutdown(sockets)

    return BarrierFirstServer


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="HTTP reward server speaking OpenRLHF's remote reward protocol",
        description="Score rollouts over HTTP: POST /get_reward (OpenRLHF --remote_rm_url), "
        "POST /score (rollout records), "
        "GET /healthz. See docs/integrations.md.",
    )
    p.add_argument("--spec", required=True, help="reward spec (.yaml/.toml/.json)")
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s, this machine only)"
    )
    p.add_argument("--port", type=port, default=8000, help="TCP port (default: %(default)s)")
    p.add_argument(
        "--token-file",
        default=None,
        help=f"file holding the bearer token clients must send (default: ${TOKEN_ENV}; neither: no token)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="refused: a command line is visible to every local user; use --token-file or $" + TOKEN_ENV,
    )
    p.add_argument(
        "--max-body-mb", type=positive_float, default=16.0, help="larger requests get 413 (default: %(default)s MiB)"
    )
    p.add_argument(
        "--body-timeout-s",
        type=positive_float,
        default=30.0,
        help="a client must send its whole body within this, else 408 (default: %(default)s s)",
    )
    p.add_argument(
        "--max-concurrency",
        type=positive_int,
        default=4,
        help="requests scored at once; the rest wait (default: %(default)s)",
    )
    p.add_argument(
        "--max-connections",
        type=positive_int,
        default=1024,
        help="open connections at most; beyond, new ones get 503 (default: %(default)s)",
    )
    p.add_argument(
        "--num-generations",
        type=positive_int,
        default=None,
        help="rollouts per prompt (OpenRLHF --n_samples_per_prompt): one-rollout requests wait for their group "
        "(see --group-timeout-s), requests of several rollouts holding part of a group get 422; required by "
        "specs with group-aware shapers (default: any group size, no waiting)",
    )
    p.add_argument(
        "--group-timeout-s",
        type=positive_float,
        default=120.0,
        help="with --num-generations and a group-aware, stateful or step-scheduled spec, a one-rollout request "
        "waits for the rest of its group at most this long from the group's first rollout; then the group is "
        "scored as it is, with a warning (default: %(default)s s, under OpenRLHF's 180 s client timeout)",
    )
    p.add_argument(
        "--groups-per-step",
        type=positive_int,
        default=1,
        help="complete groups scored together as one step (OpenRLHF --rollout_batch_size: stateful shapers "
        "then see one call per training step, as `rewardsmith score` on the batch) (default: %(default)s)",
    )
    p.add_argument(
        "--save-every-s",
        type=positive_float,
        default=60.0,
        help="how often the pipeline state is saved, also on shutdown (default: every %(default)s s)",
    )
    p.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug", "trace"),
        default="info",
        help="uvicorn's log level (default: %(default)s)",
    )
    p.set_defaults(func=_cmd_serve)
