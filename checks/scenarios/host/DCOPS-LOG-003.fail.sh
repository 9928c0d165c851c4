# auth and authpriv are excluded everywhere
backup /etc/rsyslog.conf; backup /etc/rsyslog.d/90-dcops-forward.conf; sed -i -E 's/^(auth,authpriv\.\*)/#\1/' /etc/rsyslog.conf; sed -i 's/^\*\.\* action/*.*;auth,authpriv.none action/' /etc/rsyslog.d/90-dcops-forward.conf; systemctl restart rsyslog
