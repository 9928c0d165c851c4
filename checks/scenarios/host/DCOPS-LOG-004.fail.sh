# the log server's rotation keeps the sites' logs 30 days only
backup /etc/logrotate.d/dcops-remote; sed -i -E 's/^(\s*)rotate [0-9]+/\1rotate 30/; s/^(\s*)maxage [0-9]+/\1maxage 30/' /etc/logrotate.d/dcops-remote
grep -q 'rotate 30' /etc/logrotate.d/dcops-remote
