"""The authenticated fast path: the data-plane listener and the token answers it needs.

The listener and the replicas' token gates are engines (serving/dataplane/gateway.py,
gate.py); this service wires them to the server's tokens, permission table and audit
log. A replica asks `verify` about a token it has not seen within its cache time; the
answer is the platform's own: authenticate, authorize `inference`, and record a
refusal (`auth.denied`) with the request it refused.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from modelhub.domain.auth import Action
from modelhub.errors import PermissionDenied, Unauthenticated
from modelhub.serving.dataplane.gate import Question, Verdict
from modelhub.serving.dataplane.gateway import Gateway, HandOver

if TYPE_CHECKING:
    from modelhub.services.auth import AuthService
    from modelhub.services.deployments import DeploymentService
    from modelhub.settings import Settings

TOO_LONG = "the Authorization header is too long"


class FastPathService:
    def __init__(
        self, settings: Settings, auth: AuthService, deployments: DeploymentService
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.deployments = deployments
        self.gateway: Gateway | None = None

    @property
    def port(self) -> int | None:
        """The listener's port once started (the configured one, or the one picked for 0)."""
        return self.gateway.port if self.gateway is not None else None

    def start(self) -> None:
        """Open the data-plane listener, when `data_plane_port` is set."""
        settings = self.settings
        if settings.data_plane_port is None:
            return
        context = None
        if settings.data_plane_ssl_certfile is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(
                settings.data_plane_ssl_certfile, settings.data_plane_ssl_keyfile
            )
        self.gateway = Gateway(
            settings.host,
            settings.data_plane_port,
            self._hand_over_for,
            self.verify,
            settings.serving_dir / "dataplane.sock",
            context,
        )
        self.gateway.start()
        self.auth.on_forget(self._forget)

    def _forget(self) -> None:
        if self.gateway is not None:
            self.gateway.forget()

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    def _hand_over_for(self, name: str) -> HandOver | None:
        deployments = self.deployments

        def hand_over(connection: socket.socket) -> None:
            if not deployments.hand_over(name, connection):
                raise OSError(f"{name} is no longer served here")

        return hand_over if deployments.is_served(name) else None

    def verify(self, question: Question) -> Verdict:
        """The platform's answer on one request's token (refusals audited)."""
        if not self.settings.auth:
            return Verdict(200, caller="anonymous")
        caller_name = "anonymous"
        try:
            if question.too_long:
                raise Unauthenticated(TOO_LONG)
            caller = self.auth.authenticate(_bearer(question.authorization))
            caller_name = caller.name
            self.auth.authorize(caller, Action.INFERENCE)
        except (Unauthenticated, PermissionDenied) as exc:
            status = 401 if isinstance(exc, Unauthenticated) else 403
            target = f"{question.target} (data plane, from {question.client})"
            self.auth.record_denial(caller_name, target, exc.message)
            return Verdict(status, code=exc.code, message=exc.message)
        return Verdict(200, caller=caller.name)


def _bearer(header: str | None) -> str | None:
    """The token of `Bearer <token>`; "" for another scheme, None for no header."""
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""
