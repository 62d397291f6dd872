"""Built-in plugins: ordinary modules implementing the same hooks a third party would.

The list that registers them is :data:`migpolicy.plugin_manager.BUILTIN_PLUGINS`.
"""
