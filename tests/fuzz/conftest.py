"""Prints the schemathesis run's figures (cases, time, seed) at the end of the session."""


def pytest_terminal_summary(terminalreporter):
    from tests.fuzz.test_schemathesis import SUMMARY

    for line in SUMMARY:
        terminalreporter.write_line(line)
