# an account with an empty password
id scenarioempty >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin scenarioempty; passwd -d scenarioempty >/dev/null
