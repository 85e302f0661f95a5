"""Ansible: its environment, playbook runs and their events, the repo's inventory and
requirements, and the plugins tdi gives Ansible.
"""
