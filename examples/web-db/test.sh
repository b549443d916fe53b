#!/bin/bash
# Three machines on two networks: the client and the web server share VLAN 1,
# the web server and its database share VLAN 2. The web page is built from a
# query to the database; the client fetches it by host name. Blocking the
# database's links breaks the page, unblocking mends it, and the host reaches
# the page through a forwarded loopback port.
# Run it against a mount of examples/web-db/machines.json:  VMS=/vms bash test.sh
set -eu
VMS=${VMS:-/vms}
. "$VMS/attest.sh"
step() { printf '\n== %s\n' "$*"; }

step "boot all three in parallel (returns when every one is up, networks set)"
start_all
for m in client web db; do
	printf '%s: %s, %s\n' "$m" "$(status "$m")" \
		"$(sed -n 's/^address //p' "$VMS/$m/info" | paste -sd, -)"
done

step "the database answers queries (a CGI behind busybox httpd)"
mkdir -p "$VMS/db/files/srv/cgi-bin"
cat >"$VMS/db/files/srv/cgi-bin/query" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
case $QUERY_STRING in
table=users) printf 'alice\nbob\ncarol\n' ;;
*) echo "no such table" ;;
esac
CGI
succeed db 'chmod 755 /srv/cgi-bin/query && httpd -p 80 -h /srv'

step "the web server builds its page from a query to db (by host name)"
mkdir -p "$VMS/web/files/srv/cgi-bin"
cat >"$VMS/web/files/srv/cgi-bin/page" <<'CGI'
#!/bin/sh
if ! rows=$(timeout 5 wget -q -O- 'http://db/cgi-bin/query?table=users'); then
	printf 'Status: 502 Bad Gateway\r\nContent-Type: text/plain\r\n\r\n'
	echo "the database did not answer"
	exit 0
fi
printf 'Content-Type: text/html\r\n\r\n<h1>Users</h1>\n<ul>\n'
for r in $rows; do printf '<li>%s</li>\n' "$r"; done
printf '</ul>\n'
CGI
succeed web 'chmod 755 /srv/cgi-bin/page && httpd -p 80 -h /srv'

step "the client fetches the page by host name"
page=$(succeed client 'wget -q -O- http://web/cgi-bin/page')
echo "$page"
grep -q '<li>bob</li>' <<<"$page"

step "the client cannot reach the database: no shared network"
fail client 'timeout 5 wget -q -O- http://db/cgi-bin/query?table=users'
echo "client -> db: no route (as it should be)"

step "block the database: the client's request fails"
echo block >"$VMS/db/ctl"
grep '^link ' "$VMS/db/info"
fail client 'timeout 20 wget -q -O- http://web/cgi-bin/page'
echo "client's request failed while db is blocked"

step "unblock it: the page works again"
echo unblock >"$VMS/db/ctl"
grep '^link ' "$VMS/db/info"
# The guest sees its link come back a moment later: wait until it works.
wait_until_succeeds client 'timeout 20 wget -q -O- http://web/cgi-bin/page' >/dev/null
succeed client 'wget -q -O- http://web/cgi-bin/page' | grep '<li>carol</li>'

step "fetch the page from the host through a forwarded port (127.0.0.1 only)"
echo 'forward tcp:0:80' >"$VMS/web/ctl"
port=$(sed -n 's/^forward tcp:127\.0\.0\.1:\([0-9]*\)->80$/\1/p' "$VMS/web/info")
echo "web's port 80 is 127.0.0.1:$port"
curl -fsS "http://127.0.0.1:$port/cgi-bin/page" | grep '<li>alice</li>'

step "stop them"
halt_all
cat "$VMS"/{client,web,db}/status | paste -sd' ' -
echo "PASS"
