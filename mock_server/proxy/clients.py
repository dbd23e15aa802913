"""What a client needs to go through the intercepting proxy: the environment ``kf2v-mock run
--intercept`` (and the pytest plugin's ``kf2v_intercept``) give a command, and the per-language
instructions ``kf2v-mock ca`` prints."""

from __future__ import annotations

from .authority import PERMITTED_DOMAIN, TRUSTSTORE_PASSWORD, CertificateAuthority

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
# Each names a file of CAs to trust: OpenSSL (Python's ssl default paths, aiohttp, httpx, Go,
# Ruby...), requests, curl, Node (added to its own list).
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


def java_options(proxy_url: str, authority: CertificateAuthority) -> list[str]:
    """JVM system properties: the proxy (read by HttpURLConnection and OkHttp's default proxy
    selector, so the DashScope Java SDK) and the truststore holding the CA."""
    host, _, port = proxy_url.split("://", 1)[-1].rstrip("/").rpartition(":")
    host = host.strip("[]")
    return [f"-Dhttps.proxyHost={host}", f"-Dhttps.proxyPort={port}",
            f"-Dhttp.proxyHost={host}", f"-Dhttp.proxyPort={port}",
            f"-Djavax.net.ssl.trustStore={authority.truststore_path}",
            "-Djavax.net.ssl.trustStoreType=PKCS12",
            f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}"]


def intercept_environment(env: dict[str, str], proxy_url: str,
                          authority: CertificateAuthority) -> dict[str, str]:
    """``env`` with every HTTP(S) request going through the proxy (loopback excepted) and the CA
    trusted, for Python (requests, httpx, aiohttp with ``trust_env``), curl, Go, Node and Java."""
    env = dict(env)
    for name in PROXY_VARIABLES:
        env[name] = proxy_url
    for name in ("NO_PROXY", "no_proxy"):
        present = [h for h in env.get(name, "").split(",") if h.strip()]
        env[name] = ",".join(present + [h for h in LOOPBACK if h not in present])
    for name in CA_VARIABLES:
        env[name] = str(authority.cert_path)
    env["NODE_USE_ENV_PROXY"] = "1"  # Node 22.21+ / 24.5+ honour the proxy variables with it
    env["JAVA_TOOL_OPTIONS"] = " ".join(
        filter(None, [env.get("JAVA_TOOL_OPTIONS", ""), *java_options(proxy_url, authority)]))
    env["KF2V_MOCK_PROXY_URL"] = proxy_url
    env["KF2V_MOCK_CA_FILE"] = str(authority.cert_path)
    return env


def trust_instructions(authority: CertificateAuthority, proxy_url: str | None = None) -> str:
    """What ``kf2v-mock ca`` prints: the files, and how each kind of client trusts the CA and goes
    through the proxy."""
    ca = authority.cert_path
    proxy = proxy_url or "http://127.0.0.1:PORT"
    certificate = authority.certificate
    state = "made just now" if authority.created else "kept from before"
    return f"""\
kf2v-mock local CA: {ca}
  {state}; valid until {certificate.not_valid_after_utc:%Y-%m-%d}; it can only vouch for \
*.{PERMITTED_DOMAIN} names.
  key: {authority.key_path} (mode 0600; never share it)
  Java truststore: {authority.truststore_path} (PKCS12, password {TRUSTSTORE_PASSWORD})

The proxy: `kf2v-mock serve --proxy-port PORT` (0 picks a free one; the ready file says which),
or `kf2v-mock run --intercept -- COMMAND`, which starts it and sets all of the below for COMMAND.
Clients keep their production URLs (https://dashscope.aliyuncs.com/api/v1, dashscope-intl...).

curl:
  curl --proxy {proxy} --cacert {ca} https://dashscope.aliyuncs.com/api/v1/tasks/ID \\
       -H 'Authorization: Bearer sk-kf2v-mock-beijing'
Python requests (and the dashscope SDK's blocking calls and uploads):
  export HTTPS_PROXY={proxy} REQUESTS_CA_BUNDLE={ca}
Python aiohttp (trust_env=True), httpx, the dashscope 2.0 client, OpenSSL-based tools, Go:
  export HTTPS_PROXY={proxy} SSL_CERT_FILE={ca}
  (the dashscope SDK's AioVideoSynthesis uses the proxy but trusts only certifi's bundle: in a
   throwaway environment, cat {ca} >> "$(python -m certifi)")
Node 22.21+ / 24.5+ (older versions need a proxy agent such as global-agent):
  export NODE_USE_ENV_PROXY=1 HTTPS_PROXY={proxy} NODE_EXTRA_CA_CERTS={ca}
Java (HttpURLConnection, OkHttp, the DashScope Java SDK):
  java {' '.join(java_options(proxy, authority))} ...
  or import it into a truststore of your own:
  keytool -importcert -noprompt -alias kf2v-mock -file {ca} -keystore my-truststore.p12 \\
          -storepass changeit
  and run java with -Djavax.net.ssl.trustStore=my-truststore.p12 \\
          -Djavax.net.ssl.trustStorePassword=changeit
"""
