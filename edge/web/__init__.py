"""The read-only bedside web view: live waveforms with beat labels, vitals, episodes.

A room above :mod:`edge.app` and below the CLI: the daemon starts it when
``[web] listen`` is set. Only :mod:`edge.web.server` imports aiohttp, and only
the daemon (with the web view switched on) imports that module, so ``edge
--help`` and every other command never load it.

* :mod:`edge.web.live`: taps the pipeline (blocks, beats, vitals, episodes) into
  a bounded fan-out; a slow client is dropped, the pipeline never waits.
* :mod:`edge.web.status`: the JSON the page and scripts read (sources, numerics,
  NEWS2, outbox, episodes).
* :mod:`edge.web.evidence`: an episode's evidence strip with beats re-detected,
  RR intervals and signal quality (the page and ``edge events show --png``).
* :mod:`edge.web.auth`: the access token rule.
* :mod:`edge.web.server`: the aiohttp application.
"""
