"""The REST connector (`switchboard run rest`): the aggregators of services/providers on the shared sender."""
