"""The Voilà apps of parindex, as ipywidgets components.

Each notebook under ``notebooks/`` builds one app and shows it
(``app = XApp.from_environment(); app``). An app is an :class:`widgets.base.App`:
the language switch, a message area that shows every error, and the app's
body. Apps hold no business rules: they read and write through a
:class:`parindex_lib.store.TenantSession`, and the library checks every value.

=========================  ===========================================================
module                     app
=========================  ===========================================================
``widgets.index``          the apps the signed-in user may use
``widgets.self_assessment`` a unit scores itself, with evidence and explanations
``widgets.appraisal``      the appraisal council adjusts with reasons, approves, locks
``widgets.import_wizard``  template, upload, whole-file check, write all or nothing
``widgets.results``        rankings, field heatmap, distribution, profile, deductions
``widgets.planner_app``    improvement planning and the evidence pack
``widgets.correlation_app`` PAR INDEX against PCI, PAPI and SIPAS
=========================  ===========================================================

Shared pieces: :mod:`widgets.base` (environment, messages, escaping),
:mod:`widgets.sheet` (the state of one scoring sheet), :mod:`widgets.sheet_app`
(what the self-assessment and appraisal apps do alike), :mod:`widgets.policy`
(which app a role may use, the apps' own locks) and :mod:`widgets.testing`
(small stores for tests and benchmarks).
"""
