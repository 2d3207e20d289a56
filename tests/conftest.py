"Shared pytest settings."
from hypothesis import settings

# Property tests run the same examples on every run (CI gives the same answer twice) and have no
# per-example deadline (the test machine is shared and its timing varies).
settings.register_profile("mlops_nb", derandomize=True, deadline=None)
settings.load_profile("mlops_nb")
