"""Model services: a run's model served in the run's own image (see ``oip_server`` and ``local``)."""
