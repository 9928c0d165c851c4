# an extra account with a login shell
id scenario-intruder >/dev/null 2>&1 || useradd -m -s /bin/bash scenario-intruder
