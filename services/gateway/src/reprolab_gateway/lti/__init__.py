"""LTI 1.3 / LTI Advantage: Reprolab as a tool inside an LMS (Canvas, Moodle, ...).

Why not pylti1p3: it is synchronous (``requests``), keeps state through its own session and cookie
abstractions, and the checks the issue names as its gaps (``azp`` with several audiences, single-use
nonce, ``iat`` age, the ``target_link_uri`` allow-list, timeouts, a refetch on an unknown ``kid``) sit
inside its ``MessageLaunch`` validators, so closing them meant overriding most of it. Here PyJWT does
the JOSE (RS256 signatures, exp/aud/iss) and every LTI check is a named step in ``launch.py`` with a
test of its own; httpx talks to the LMS asynchronously with a timeout.

Modules: ``models`` (tables), ``keys`` (the tool's RSA key and JWKS), ``platforms`` (registrations),
``platform_keys`` (the LMS's JWKS, cached), ``launch`` (login and id_token validation), ``flows``
(provisioning, workspace, membership, sign-in), ``deeplink``, ``services`` (AGS and NRPS clients with
the client-credentials token), ``grades`` (line items and grade posts), ``audit`` (lti.* events).
"""
