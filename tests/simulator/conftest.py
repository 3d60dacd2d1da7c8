import httpx
import pytest
from supplier_client import SupplierClient

from simulator import Simulator


@pytest.fixture(scope="session")
def small_simulator():
    with Simulator(stones=2000, seed=7) as simulator:
        yield simulator


@pytest.fixture
def client(small_simulator):
    small_simulator.catalogue.reset()
    small_simulator.service.faults.configure({})
    small_simulator.service.reset_stats()
    small_simulator.service.options.overrun = True
    small_simulator.service.options.total_count_mode = "remaining"
    with httpx.Client(timeout=30) as http:
        yield SupplierClient(small_simulator, http)
