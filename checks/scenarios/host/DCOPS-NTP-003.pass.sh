# the hub follows its upstream source of the province file and has selected it
restore /etc/chrony/chrony.conf; systemctl restart chrony
for i in $(seq 1 120); do chronyc -n sources 2>/dev/null | grep -q '^\^\*' && exit 0; sleep 0.5; done
echo "the hub selected no upstream time source within 60s" >&2; exit 1
