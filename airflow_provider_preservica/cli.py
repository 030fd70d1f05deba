"""``airflow-preservica``: migrate legacy ini files to Connections and manage the token cache.

airflow-preservica import-ini config.ini --conn-id preservica_prod          # writes the Connection
airflow-preservica import-ini config.ini --conn-id preservica_prod --print  # prints AIRFLOW_CONN_...
airflow-preservica token-status --conn-id preservica_prod                   # expiry, never the token
airflow-preservica clear-token --conn-id preservica_prod                    # force a new login
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence

from airflow_provider_preservica.client.auth.token import AccessToken
from airflow_provider_preservica.connection.endpoint import build_base_url
from airflow_provider_preservica.connection.ini import read_ini
from airflow_provider_preservica.connection.settings import token_variable_key
from airflow_provider_preservica.connection.sources import connection_dict_from_ini
from airflow_provider_preservica.exceptions import PreservicaError


def _env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def _import_ini(args: argparse.Namespace) -> int:
    creds = read_ini(args.file)
    build_base_url(creds.host, allow_http=args.allow_http)  # refuse clear-text credentials before storing them
    conn = connection_dict_from_ini(creds)
    if args.allow_http:
        conn["extra"]["allow_http"] = True
    if args.print:
        print(
            f"# contains the password from {creds.path}: keep it out of shell history and version control",
            file=sys.stderr,
        )
        print(f"export {_env_name(args.conn_id)}={shlex.quote(json.dumps(conn))}")
        return 0
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        existing = session.query(Connection).filter(Connection.conn_id == args.conn_id).one_or_none()
        if existing is not None and not args.overwrite:
            print(
                f"Connection {args.conn_id!r} already exists; pass --overwrite to replace it",
                file=sys.stderr,
            )
            return 1
        if existing is not None:
            session.delete(existing)
            session.flush()
        session.add(
            Connection(
                conn_id=args.conn_id,
                conn_type=conn["conn_type"],
                description=conn["description"],
                host=conn["host"],
                login=conn["login"],
                password=conn["password"],
                extra=json.dumps(conn["extra"]),
            )
        )
    tenant = f", tenant {creds.tenant}" if creds.tenant else ""
    print(
        f"Connection {args.conn_id!r} created from {creds.dialect} {creds.path}: "
        f"{creds.username} at {creds.host}{tenant}"
    )
    return 0


def _token_status(args: argparse.Namespace) -> int:
    from airflow.models import Variable

    key = token_variable_key(args.conn_id)
    raw = Variable.get(key, default_var=None)
    token = AccessToken.from_json(raw)
    if raw is None:
        print(f"{key}: empty (the next task logs in)")
    elif token is None:
        print(f"{key}: unreadable (ignored and overwritten by the next login)")
    else:
        left = token.expires_at - time.time()
        state = f"valid for {left:.0f} s more" if left > 0 else f"expired {-left:.0f} s ago"
        issued = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(token.issued_at))
        print(f"{key}: issued {issued}, {state}")
    return 0


def _clear_token(args: argparse.Namespace) -> int:
    from airflow.models import Variable

    key = token_variable_key(args.conn_id)
    Variable.delete(key)
    print(f"{key}: cleared; the next task logs in again")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-preservica", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    imp = commands.add_parser("import-ini", help="turn a config.ini / credentials.properties into a Connection")
    imp.add_argument("file", help="path of the legacy ini file")
    imp.add_argument("--conn-id", required=True, help="Connection id to create, e.g. preservica_prod")
    imp.add_argument("--print", action="store_true", help="print an AIRFLOW_CONN_... export instead of writing")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing Connection of that id")
    imp.add_argument("--allow-http", action="store_true", help="permit a plain http:// server that is not loopback")
    imp.set_defaults(func=_import_ini)

    status = commands.add_parser("token-status", help="show when the cached token expires (never the token)")
    status.add_argument("--conn-id", required=True)
    status.set_defaults(func=_token_status)

    clear = commands.add_parser("clear-token", help="drop the cached token so the next task logs in")
    clear.add_argument("--conn-id", required=True)
    clear.set_defaults(func=_clear_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PreservicaError as exc:
        print(f"airflow-preservica: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
