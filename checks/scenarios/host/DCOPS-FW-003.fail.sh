# an extra service listens on every address, tcp/8081
systemd-run --quiet --unit=dcops-scenario-listener python3 -m http.server 8081 --bind 0.0.0.0; for i in $(seq 1 40); do ss -Htln 'sport = :8081' | grep -q . && exit 0; sleep 0.25; done; exit 1
