"""The Mirage platform as a Pulumi program: ``pulumi up`` provisions the cloud underneath the
operator (or takes an existing cluster) and installs the platform on it. ``__main__.py`` reads
the configuration (:mod:`stacks.settings`) and composes the components of
:mod:`stacks.components` (:mod:`stacks.program`); ``policy/`` is the policy pack."""
