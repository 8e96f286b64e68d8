"""``rewardsmith serve``: the OpenRLHF-compatible reward server (needs the ``serve`` extra)."""

from __future__ import annotations

import argparse
import os

from ..cli_args import port, positive_float, positive_int


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import create_app

    token = args.token or os.environ.get("REWARDSMITH_TOKEN")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        print("rewardsmith serve: warning: listening beyond loopback without --token; anyone who can reach it can score", flush=True)
    app = create_app(args.spec, token=token, max_body_bytes=int(args.max_body_mb * 2**20), max_concurrency=args.max_concurrency, save_every_s=args.save_every_s,
                     group_size=args.num_generations)
    print(f"rewardsmith serve: POST http://{args.host}:{args.port}/get_reward (OpenRLHF --remote_rm_url), "
          "/score, GET /healthz", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="HTTP reward server speaking OpenRLHF's remote reward protocol",
        description="Score rollouts over HTTP: POST /get_reward (OpenRLHF --remote_rm_url), "
        "POST /score (rollout records), "
        "GET /healthz. See docs/integrations.md.",
    )
    p.add_argument("--spec", required=True, help="reward spec (.yaml/.toml/.json)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=port, default=8000, help="TCP port (default: %(default)s)")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (default: $REWARDSMITH_TOKEN, else none)")
    p.add_argument("--max-body-mb", type=positive_float, default=16.0, help="larger requests get 413 (default: %(default)s MiB)")
    p.add_argument("--max-concurrency", type=positive_int, default=4,
                   help="requests scored at once; the rest wait (default: %(default)s)")
    p.add_argument("--num-generations", type=positive_int, default=None,
                   help="rollouts per prompt (OpenRLHF --n_samples_per_prompt); requests holding part of a group get 422 "
                        "(default: any group size, equal sizes when the spec has group-aware shapers)")
    p.add_argument("--save-every-s", type=positive_float, default=60.0,
                   help="how often the pipeline state is saved, also on shutdown (default: every %(default)s s)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug", "trace"), default="info",
                   help="uvicorn's log level (default: %(default)s)")
    p.set_defaults(func=_cmd_serve)
