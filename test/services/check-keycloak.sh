#!/usr/bin/env bash
# Checks the Keycloak started by services.sh against what faasd's tests rely on:
# issuer, token claims, JWKS, the short-lived client, the device flow, introspection by
# faas-frontend, and the admin REST API (incl. adding a signing key = key rotation).
# Needs: curl, jq, base64 (coreutils). Reads services.env (or the FAASD_TEST_* variables).
# Usage: check-keycloak.sh [--keep-rotated-key] [--print-token]
set -euo pipefail

HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"
if [[ -z "${FAASD_TEST_KEYCLOAK:-}" ]]; then
  # shellcheck disable=SC1090
  source <("$HERE/services.sh" env)
fi
KEEP_KEY=0 PRINT=0
for a in "$@"; do
  case "$a" in
    --keep-rotated-key) KEEP_KEY=1 ;;
    --print-token) PRINT=1 ;;
    *) echo "usage: $0 [--keep-rotated-key] [--print-token]" >&2; exit 2 ;;
  esac
done
for t in curl jq base64; do command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }; done

KC="$FAASD_TEST_KEYCLOAK"
ISS="$FAASD_TEST_OIDC_ISSUER"
TOKEN_URL="$ISS/protocol/openid-connect/token"
JWKS_URL="$ISS/protocol/openid-connect/certs"
ok=0
pass() { ok=$((ok + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }

b64url_json() {  # decode one JWT segment
  local s="$1"
  s="${s//-/+}"
  s="${s//_//}"
  while ((${#s} % 4)); do s+="="; done
  printf '%s' "$s" | base64 -d
}
jwt_header() { b64url_json "$(cut -d. -f1 <<<"$1")"; }
jwt_claims() { b64url_json "$(cut -d. -f2 <<<"$1")"; }

password_grant() {  # client user -> token response JSON
  curl -fsS "$TOKEN_URL" -d grant_type=password -d "client_id=$1" \
    -d "username=$2" -d "password=$2-pw" -d scope=openid
}

# 1. discovery
disc="$(curl -fsS "$ISS/.well-known/openid-configuration")"
[[ "$(jq -r .issuer <<<"$disc")" == "$ISS" ]] || fail "discovery issuer $(jq -r .issuer <<<"$disc") != $ISS"
[[ "$(jq -r .jwks_uri <<<"$disc")" == "$JWKS_URL" ]] || fail "jwks_uri"
pass "discovery: issuer = $ISS"

jwks="$(curl -fsS "$JWKS_URL")"

# 2. users and their roles
declare -A WANT=([alice]="faas-user" [bob]="faas-user" [carol]="faas-user faas-admin" [dave]="")
for u in alice bob carol dave; do
  resp="$(password_grant faas-cli "$u")" || fail "password grant for $u"
  at="$(jq -r .access_token <<<"$resp")"
  h="$(jwt_header "$at")"
  c="$(jwt_claims "$at")"
  [[ "$(jq -r .alg <<<"$h")" == RS256 ]] || fail "$u: alg $(jq -r .alg <<<"$h")"
  kid="$(jq -r .kid <<<"$h")"
  jq -e --arg k "$kid" '.keys[] | select(.kid == $k and .use == "sig")' <<<"$jwks" >/dev/null ||
    fail "$u: kid $kid not in JWKS"
  jq -e --arg iss "$ISS" --arg u "$u" '
      .iss == $iss and .typ == "Bearer" and .azp == "faas-cli" and .preferred_username == $u
      and ((.aud | if type == "array" then . else [.] end) | index("faas-frontend") != null)
      and (.exp - .iat == 300) and (.sub | length > 0)' <<<"$c" >/dev/null ||
    fail "$u: claims $(jq -c . <<<"$c")"
  roles="$(jq -r '.realm_access.roles // [] | map(select(startswith("faas-"))) | sort | join(" ")' <<<"$c")"
  want="$(tr ' ' '\n' <<<"${WANT[$u]}" | sed '/^$/d' | sort | xargs)"
  [[ "$roles" == "$want" ]] || fail "$u: faas roles '$roles', want '$want'"
  pass "$u: iss, aud faas-frontend, azp faas-cli, typ Bearer, kid in JWKS, faas roles [${roles}]"
  if [[ "$u" == alice && "$PRINT" == 1 ]]; then
    echo "---- alice access token header ----"; jq . <<<"$h"
    echo "---- alice access token claims ----"; jq . <<<"$c"
  fi
done

# 3. errors (RFC 6749: invalid_grant is HTTP 400; Keycloak 26 follows that)
body="$(curl -s -w '\n%{http_code}' "$TOKEN_URL" -d grant_type=password -d client_id=faas-cli \
  -d username=alice -d password=wrong)"
code="$(tail -n 1 <<<"$body")"
[[ "$code" == 400 && "$(head -n 1 <<<"$body" | jq -r .error)" == invalid_grant ]] ||
  fail "wrong password gave HTTP $code: $body"
pass "wrong password: HTTP 400 invalid_grant"

# 4. short-lived tokens
resp="$(password_grant faas-cli-short alice)"
at="$(jq -r .access_token <<<"$resp")"
[[ "$(jq -r .expires_in <<<"$resp")" == 3 ]] || fail "faas-cli-short expires_in $(jq -r .expires_in <<<"$resp")"
jq -e '(.exp - .iat == 3) and .azp == "faas-cli-short" and (.aud | index("faas-frontend") != null)' \
  <<<"$(jwt_claims "$at")" >/dev/null || fail "faas-cli-short claims"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $at" "$ISS/protocol/openid-connect/userinfo")"
[[ "$code" == 200 ]] || fail "userinfo with a fresh short token: HTTP $code"
sleep 4
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $at" "$ISS/protocol/openid-connect/userinfo")"
[[ "$code" == 401 ]] || fail "userinfo with an expired short token: HTTP $code, want 401"
pass "faas-cli-short: exp - iat = 3 s, rejected by userinfo after 4 s"

# 5. device authorization grant
dev="$(curl -fsS "$ISS/protocol/openid-connect/auth/device" -d client_id=faas-cli)"
jq -e '.device_code and .user_code and .verification_uri' <<<"$dev" >/dev/null || fail "device flow: $dev"
pass "faas-cli: device authorization endpoint answers (user_code $(jq -r .user_code <<<"$dev"))"

# 6. faas-frontend introspects with its client secret
at="$(password_grant faas-cli alice | jq -r .access_token)"
intro="$(curl -fsS "$ISS/protocol/openid-connect/token/introspect" \
  -u "faas-frontend:${FAASD_TEST_KEYCLOAK_FRONTEND_SECRET:-faas-frontend-dev-secret}" -d "token=$at")"
[[ "$(jq -r .active <<<"$intro")" == true ]] || fail "introspection: $intro"
pass "faas-frontend: token introspection with its client secret"

# 7. admin REST API and key rotation
adm="$(curl -fsS "$KC/realms/master/protocol/openid-connect/token" -d grant_type=password \
  -d client_id=admin-cli -d "username=$FAASD_TEST_KEYCLOAK_ADMIN" \
  -d "password=$FAASD_TEST_KEYCLOAK_ADMIN_PASSWORD" | jq -r .access_token)"
[[ -n "$adm" && "$adm" != null ]] || fail "admin token"
providers="$(curl -fsS -H "Authorization: Bearer $adm" \
  "$KC/admin/realms/faas/components?type=org.keycloak.keys.KeyProvider")"
jq -e 'map(.providerId) | index("rsa-generated") != null' <<<"$providers" >/dev/null || fail "key providers: $providers"
pass "admin API: key providers of realm faas: $(jq -r 'map(.name) | join(", ")' <<<"$providers")"

old_kid="$(jwt_header "$at" | jq -r .kid)"
realm_id="$(curl -fsS -H "Authorization: Bearer $adm" "$KC/admin/realms/faas" | jq -r .id)"
name="rsa-rotated-$(date +%s)"
loc="$(curl -fsS -D - -o /dev/null -H "Authorization: Bearer $adm" -H 'Content-Type: application/json' \
  "$KC/admin/realms/faas/components" \
  -d "{\"name\":\"$name\",\"providerId\":\"rsa-generated\",\"providerType\":\"org.keycloak.keys.KeyProvider\",\"parentId\":\"$realm_id\",\"config\":{\"priority\":[\"$(date +%s)\"],\"keySize\":[\"2048\"],\"algorithm\":[\"RS256\"],\"active\":[\"true\"],\"enabled\":[\"true\"]}}" |
  tr -d '\r' | sed -n 's/^[Ll]ocation: //p')"
[[ -n "$loc" ]] || fail "POST key provider gave no Location"
at2="$(password_grant faas-cli alice | jq -r .access_token)"
new_kid="$(jwt_header "$at2" | jq -r .kid)"
jwks2="$(curl -fsS "$JWKS_URL")"
[[ "$new_kid" != "$old_kid" ]] || fail "new tokens still signed with $old_kid"
jq -e --arg k "$new_kid" '.keys[] | select(.kid == $k)' <<<"$jwks2" >/dev/null || fail "new kid not in JWKS"
jq -e --arg k "$old_kid" '.keys[] | select(.kid == $k)' <<<"$jwks2" >/dev/null || fail "old kid left JWKS"
pass "key rotation: new provider $name -> tokens signed by kid $new_kid, JWKS has old and new kid"
if [[ "$KEEP_KEY" != 1 ]]; then
  curl -fsS -X DELETE -H "Authorization: Bearer $adm" "$loc" >/dev/null
  jq -e --arg k "$new_kid" '[.keys[] | select(.kid == $k)] | length == 0' <<<"$(curl -fsS "$JWKS_URL")" >/dev/null ||
    fail "deleted key still in JWKS"
  pass "key removal: DELETE $loc removes kid $new_kid from JWKS"
fi

echo "check-keycloak: all $ok checks OK"
