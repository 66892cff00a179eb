"""Double-entry ledger: wallets, payout holds, fees and settlement (see ``models``)."""
