"""A simulated agent fleet for the demo, the end-to-end test and the loop benchmark.

Everything here is a simulation, and everything it prints or records says so.
"""
