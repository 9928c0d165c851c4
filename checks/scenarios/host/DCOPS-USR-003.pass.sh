# no empty password
userdel scenarioempty 2>/dev/null || true
