"""A real OpenLDAP server (Debian's slapd) for the LDAP sign-in tests: its own slapd.conf, a directory of
people and groups loaded with slapadd, a CA and server certificate made here for StartTLS and LDAPS, on
free loopback ports. Nothing of the system's slapd configuration is used."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from reprolab_common.natsserver import free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SUFFIX = "dc=uni,dc=example"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret"
# uid -> (cn, password, groups)
PEOPLE = {
    "carol": ("Carol Teacher", "carol-ldap-pass", ["cs-staff"]),
    "dave": ("Dave Student", "dave-ldap-pass", ["cs-students"]),
    "erin": ("Erin Nogroup", "erin-ldap-pass", []),
}
GROUPS = {"cs-staff": ["carol"], "cs-students": ["dave"]}


def _ldif() -> str:
    out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Uni\ndc: uni\n",
           f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
           f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
           f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
           f"userPassword: {READER_PASSWORD}\n"]
    for uid, (cn, password, _) in PEOPLE.items():
        out.append(f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\n"
                   f"sn: {cn.split()[-1]}\nmail: {uid}@uni.example\nuserPassword: {password}\n")
    for group, members in GROUPS.items():
        lines = "".join(f"member: uid={m},ou=people,{SUFFIX}\n" for m in members)
        out.append(f"dn: cn={group},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
    return "\n".join(out)


def _certificates(root: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reprolab test LDAP CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = root / "ca.pem", root / "server.pem", root / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


@dataclass
class Slapd:
    root: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    def start(self) -> Slapd:
        data = self.root / "data"
        data.mkdir(parents=True)
        ca, cert, key = _certificates(self.root)
        conf = self.root / "slapd.conf"
        conf.write_text(f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {self.root}/slapd.pid
argsfile {self.root}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
rootpw admin-not-used
directory {data}
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by anonymous auth
""")
        (self.root / "data.ldif").write_text(_ldif())
        subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(self.root / "data.ldif")], check=True,
                       capture_output=True, timeout=60)
        log = (self.root / "slapd.log").open("wb")
        self.proc = subprocess.Popen([SLAPD, "-f", str(conf), "-h", f"{self.url}/ {self.ldaps_url}/", "-d", "0"],
                                     stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"slapd did not start; see {self.root / 'slapd.log'}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
