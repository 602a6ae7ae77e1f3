//! The scheduler: watches unscheduled pods, filters and scores nodes, binds through `pods/binding`.
