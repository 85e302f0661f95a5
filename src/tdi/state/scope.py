"""Where state capture looks by default, and what it ignores there.

Roots are the places configuration management writes to. /usr (outside /usr/local) is
left out: its files belong to packages, and package versions are captured already.

Every ignore pattern exists because it made two hosts in the same state differ. Globs
are matched with fnmatch against absolute paths; ``*`` also matches ``/``; a pattern
matching a directory prunes it. Keep this list short: every entry hides real changes.
"""

from __future__ import annotations

DEFAULT_ROOTS: tuple[str, ...] = (
    "/etc",  # configuration
    "/srv",  # site data served by the host
    "/opt",  # software installed outside the package manager
    "/usr/local",  # the same, FHS style
    "/var/lib",  # service state directories (their data differs; ignore yours in tdi.yml)
    "/var/www",  # web roots
    "/var/spool",  # crontabs, queues
    "/home",  # users' files, e.g. authorized_keys
    "/root",
)

DEFAULT_IGNORE: tuple[str, ...] = (
    # Volatile by nature, in case a configured root contains them.
    "/var/log",  # logs: content grows with time
    "/var/cache",  # caches are rebuilt on demand
    "/run",  # runtime state (pid files, sockets), lost at reboot
    "/tmp",
    "/var/tmp",
    # Docker writes these into every container; they name the container.
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    # Unique per host by design.
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",  # written by dbus's postinst
    "/etc/ssh/ssh_host_*",  # host keys, generated at install
    # Captured structurally instead, as "packages": version, status and auto marks.
    "/var/lib/dpkg",  # dpkg's database; status and *.list files
    "/var/lib/apt",  # apt's index downloads, timestamps, extended_states (auto marks)
    "/var/lib/rpm",  # rpm's database (the probe also leaves out rpm's own _dbpath)
    "/var/lib/dnf",  # dnf's history and its reasons (user or dependency)
    "/var/lib/yum",  # the same, from yum
    # Captured as "users" and "groups", where a uid alone is a warning, not a difference.
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",  # also holds the day of the last password change
    "/etc/gshadow",
    "/etc/subuid",  # ranges handed out in account creation order
    "/etc/subgid",
    # Backups the tools above keep of the previous version: history, not state.
    "/etc/passwd-",
    "/etc/group-",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/subuid-",
    "/etc/subgid-",
    "*.dpkg-old",  # conffile prompts: the live file is compared, not its leftovers
    "*.dpkg-dist",
    "*.dpkg-bak",
    "*.ucf-old",
    "*.ucf-dist",
    "*.rpmnew",  # rpm's and apk's own leftovers of the same kind
    "*.rpmsave",
    "*.rpmorig",
    "*.apk-new",
    # Written by timers on their own schedule when systemd is init, not by a converge.
    "/var/lib/logrotate/status",  # logrotate.timer: when each log was last rotated
    "/var/lib/systemd/timers",  # when each timer last ran: written at boot, not by a converge
    # Bytecode embeds the source file's mtime.
    "*.pyc",
    "*/__pycache__",
    # Left behind by the tools that converge the host.
    "/root/.ansible",  # Ansible's remote tmp on the target
    "/home/*/.ansible",  # the same, when Ansible connects or becomes another user
    "/var/lib/tdi",  # tdi's own files in the container
)
