"""``python -m reprolab_gateway``: serve the REST API with uvicorn."""

import uvicorn
from reprolab_common import lifeline
from reprolab_common.runtime import setup_logging

from .core.config import get_settings
from .main import create_app


def main() -> None:
    settings = get_settings()
    setup_logging("gateway", settings.common.log_level)
    lifeline.watch()  # uvicorn's own SIGTERM handling then stops the server cleanly
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
