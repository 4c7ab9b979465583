"""``python -m services.smsc_simulator --port 2775 --control-port 2776 ...``"""

from .runner import main

if __name__ == "__main__":
    main()
