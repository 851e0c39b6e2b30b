"""The malloc settings smpc's own processes start with (smpc.net.allocator)."""

import os
import subprocess
import sys

import pytest

import smpc
from smpc.net import allocator
from tests import programs

GLIBC = allocator.applies({})


def test_tuned_environment_adds_the_settings_and_keeps_a_users_own():
    env = allocator.tuned_environment({"MALLOC_ARENA_MAX": "4", "PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["MALLOC_ARENA_MAX"] == "4"
    if GLIBC:
        assert env["MALLOC_MMAP_MAX_"] == "0" and env["MALLOC_TRIM_THRESHOLD_"] == str(1 << 32)
        assert allocator.is_tuned(env) and not allocator.is_tuned({"PATH": "/bin"})


def test_opting_out_leaves_the_environment_alone():
    env = {"SMPC_TUNE_MALLOC": "0"}
    assert allocator.tuned_environment(env) == env
    assert allocator.is_tuned(env)  # nothing to do
    assert not allocator.applies(env)


def test_for_child_processes_adds_the_settings_only_within_the_block(monkeypatch):
    for name in allocator.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SMPC_TUNE_MALLOC", raising=False)
    with allocator.for_child_processes():
        inside = {name: os.environ.get(name) for name in allocator.SETTINGS}
    assert all(name not in os.environ for name in allocator.SETTINGS)
    assert inside == (allocator.SETTINGS if GLIBC else dict.fromkeys(allocator.SETTINGS))


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's")
def test_tcp_party_processes_start_with_the_settings(monkeypatch):
    for name in allocator.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    results = smpc.run(programs.malloc_settings, parties=2, transport="tcp")
    assert results == [allocator.SETTINGS] * 2


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's")
def test_restart_tuned_restarts_a_command_once_with_the_settings():
    script = ("import os, sys; from smpc.net.allocator import restart_tuned; "
              "print('start', flush=True); restart_tuned(); print(os.environ.get('MALLOC_MMAP_MAX_'), sys.argv[1:])")
    env = {k: v for k, v in os.environ.items() if k not in allocator.SETTINGS and k != "SMPC_TUNE_MALLOC"}
    out = subprocess.run([sys.executable, "-c", script, "an argument"], env=env, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:3] == ["start", "start", "0 ['an argument']"]  # once without the settings, once with them
    opted_out = subprocess.run([sys.executable, "-c", script, "x"], env={**env, "SMPC_TUNE_MALLOC": "0"},
                               capture_output=True, text=True, check=True).stdout.split("\n")
    assert opted_out[:2] == ["start", "None ['x']"]


def test_release_freed_memory_returns_without_error():
    allocator.release_freed_memory()
