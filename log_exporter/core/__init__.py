"""The pure core: windows, plans, status, polling schedules, the config, the state's model,
policies. No AWS call and no clock of its own: what depends on the time takes `now`."""
