"""Card processors behind one interface: gateway.py (the Protocol), sandbox.py, stripe.py."""
