"""ketch's scheduler: filter and score nodes for each pending pod, bind the best one."""

from .config import ConfigError, SchedulerConfig, load_config
from .framework import CycleState, Plugin
from .scheduler import Scheduler, run_scheduler
from .types import NodeInfo, PodInfo

__all__ = ["ConfigError", "CycleState", "NodeInfo", "Plugin", "PodInfo", "Scheduler", "SchedulerConfig",
           "load_config", "run_scheduler"]
