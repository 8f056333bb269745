"""``python -m reprolab_gateway``: serve the REST API with uvicorn.
``python -m reprolab_gateway admin-token [USERNAME]``: print a new API token for a platform admin
(default ``admin``), for an operator who lost theirs (see ``recovery.py``)."""

import gc
import sys

from .core.config import get_settings


def main() -> None:
    # imported here: admin-token needs neither the web app nor the server
    import uvicorn
    from reprolab_common import lifeline
    from reprolab_common.runtime import setup_logging

    from .main import create_app

    settings = get_settings()
    setup_logging("gateway", settings.common.log_level)
    lifeline.watch()  # uvicorn's own SIGTERM handling then stops the server cleanly
    app = create_app(settings)
    # Everything imported so far lives as long as the process: out of the collector's sight, a full
    # collection no longer walks the whole heap (tens of ms, in the p99 of whichever requests it hit).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        # named, not "auto": the test environment has uvloop and httptools (evidently's uvicorn[standard]),
        # the platform images do not, and tests must run the server production runs
        loop="asyncio",
        http="h11",
        ws="websockets-sansio",  # the session proxy's websockets (JupyterLab kernels): named, as above
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["admin-token"] and len(sys.argv) <= 3:
        from .recovery import RecoveryError, mint_admin_token

        try:
            print(mint_admin_token(get_settings().common, *sys.argv[2:3]))
        except RecoveryError as exc:
            raise SystemExit(f"no token minted: {exc}") from None
    elif sys.argv[1:]:
        raise SystemExit("usage: python -m reprolab_gateway [admin-token [USERNAME]]")
    else:
        main()
