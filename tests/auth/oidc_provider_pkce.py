"""oidc-provider-mock with PKCE enforced (``python oidc_provider_pkce.py --port N ...``, same options).

The mock registers Authlib's authorization-code grant without the RFC 7636 extension, so it ignores
``code_challenge``. This adds Authlib's own ``CodeChallenge`` to that grant and keeps each code's challenge
beside it, so the token endpoint refuses a code redeemed without the verifier of its challenge. Nothing
else of the provider changes.
"""

from __future__ import annotations

from authlib.integrations import flask_oauth2
from authlib.oauth2.rfc7636 import CodeChallenge
from oidc_provider_mock import __main__ as cli
from oidc_provider_mock import _app

_challenges: dict[str, tuple[str | None, str | None]] = {}
_save = _app.AuthorizationCodeGrant.save_authorization_code


def _save_with_challenge(self, code, request):
    _save(self, code, request)
    data = request.payload.data
    _challenges[code] = (data.get("code_challenge"), data.get("code_challenge_method"))


class _Pkce(CodeChallenge):
    def get_authorization_code_challenge(self, authorization_code):
        return _challenges.get(authorization_code.code, (None, None))[0]

    def get_authorization_code_challenge_method(self, authorization_code):
        return _challenges.get(authorization_code.code, (None, None))[1]


_register = flask_oauth2.AuthorizationServer.register_grant


def _register_with_pkce(self, grant_cls, extensions=None):
    if grant_cls is _app.AuthorizationCodeGrant:
        extensions = [*(extensions or []), _Pkce(required=True)]
    return _register(self, grant_cls, extensions)


_app.AuthorizationCodeGrant.save_authorization_code = _save_with_challenge
flask_oauth2.AuthorizationServer.register_grant = _register_with_pkce

if __name__ == "__main__":
    cli.run()
