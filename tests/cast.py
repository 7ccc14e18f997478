"""The cast shared by test_policy.py and test_access_matrix.py: who plays each role around the
Rivera household (the fixtures are in conftest.py)."""

# Role name (used in test ids) -> the fixture that makes that person.
ROLES = {
    "admin": "admin",
    "office_manager": "office_manager",
    "office_manager_private": "office_manager_private",
    "staff_scheduled": "assigned_staff",
    "staff_preferred": "preferred_sitter",
    "staff_unrelated": "unassigned_staff",
    "client": "household_login",
    "other_client": "other_household_login",
    "other_business_admin": "stranger_admin",
}
# The logged-out visitor: a role name of its own, with no fixture and no user.
ANONYMOUS = "anonymous"
ADMIN_TEAM = frozenset({"admin", "office_manager", "office_manager_private"})
